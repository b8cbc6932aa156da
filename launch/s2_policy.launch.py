"""Launches s2_policy with a parameter file: one lifecycle node (mode:=combined), or a features node and a policy
head node (mode:=split) that talk through S2Features.

ros2 launch s2_policy s2_policy.launch.py params_file:=/path/params.yaml camera0:=/robot/wrist/image_raw
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import LifecycleNode
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    args = [
        DeclareLaunchArgument('params_file', default_value=PathJoinSubstitution([FindPackageShare('s2_policy'), 'config', 's2_policy.yaml']),
                              description='ROS 2 parameter file (s2_policy: ros__parameters: ...)'),
        DeclareLaunchArgument('mode', default_value='combined', description='combined (one node) or split (features node + policy head node)'),
        DeclareLaunchArgument('namespace', default_value='', description='namespace of the node(s)'),
        DeclareLaunchArgument('use_sim_time', default_value='false', description='follow /clock (simulation runs)'),
        DeclareLaunchArgument('autostart', default_value='true', description='configure and activate without a lifecycle manager'),
        DeclareLaunchArgument('log_level', default_value='info', description='debug, info, warn, error'),
        DeclareLaunchArgument('camera0', default_value='camera0/image_raw', description='topic remapped onto camera0/image_raw'),
        DeclareLaunchArgument('camera1', default_value='camera1/image_raw', description='topic remapped onto camera1/image_raw'),
        DeclareLaunchArgument('joint_states', default_value='joint_states', description='topic remapped onto joint_states'),
    ]
    parameters = [
        LaunchConfiguration('params_file'),
        {'use_sim_time': LaunchConfiguration('use_sim_time'), 'autostart': LaunchConfiguration('autostart')},
    ]
    remappings = [
        ('camera0/image_raw', LaunchConfiguration('camera0')),
        ('camera0/image_raw/compressed', [LaunchConfiguration('camera0'), '/compressed']),
        ('camera1/image_raw', LaunchConfiguration('camera1')),
        ('camera1/image_raw/compressed', [LaunchConfiguration('camera1'), '/compressed']),
        ('joint_states', LaunchConfiguration('joint_states')),
    ]
    ros_args = ['--ros-args', '--log-level', LaunchConfiguration('log_level')]
    combined = IfCondition(PythonExpression(["'", LaunchConfiguration('mode'), "' == 'combined'"]))
    split = IfCondition(PythonExpression(["'", LaunchConfiguration('mode'), "' == 'split'"]))
    nodes = [
        LifecycleNode(package='s2_policy', executable='s2_policy_node', name='s2_policy', namespace=LaunchConfiguration('namespace'),
                      output='screen', parameters=parameters, remappings=remappings, arguments=ros_args, condition=combined),
        # Split mode: both nodes read the same parameter file (under their own names or /**); features.topic must
        # be a global name so that the head node finds the features node's S2Features.
        LifecycleNode(package='s2_policy', executable='s2_features_node', name='s2_features', namespace=LaunchConfiguration('namespace'),
                      output='screen', parameters=parameters, remappings=remappings, arguments=ros_args, condition=split),
        LifecycleNode(package='s2_policy', executable='s2_policy_head_node', name='s2_policy_head', namespace=LaunchConfiguration('namespace'),
                      output='screen', parameters=parameters, remappings=remappings, arguments=ros_args, condition=split),
    ]
    return LaunchDescription(args + nodes)
