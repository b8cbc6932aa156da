"""Launches the s2_policy node (a managed lifecycle node) with a parameter file.

ros2 launch s2_policy s2_policy.launch.py params_file:=/path/params.yaml camera0:=/robot/wrist/image_raw
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    args = [
        DeclareLaunchArgument('params_file', default_value=PathJoinSubstitution([FindPackageShare('s2_policy'), 'config', 's2_policy.yaml']),
                              description='ROS 2 parameter file (s2_policy: ros__parameters: ...)'),
        DeclareLaunchArgument('namespace', default_value='', description='namespace of the node'),
        DeclareLaunchArgument('use_sim_time', default_value='false', description='follow /clock (simulation runs)'),
        DeclareLaunchArgument('autostart', default_value='true', description='configure and activate without a lifecycle manager'),
        DeclareLaunchArgument('log_level', default_value='info', description='debug, info, warn, error'),
        DeclareLaunchArgument('camera0', default_value='camera0/image_raw', description='topic remapped onto camera0/image_raw'),
        DeclareLaunchArgument('camera1', default_value='camera1/image_raw', description='topic remapped onto camera1/image_raw'),
        DeclareLaunchArgument('joint_states', default_value='joint_states', description='topic remapped onto joint_states'),
    ]
    node = LifecycleNode(
        package='s2_policy',
        executable='s2_policy_node',
        name='s2_policy',
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        parameters=[
            LaunchConfiguration('params_file'),
            {'use_sim_time': LaunchConfiguration('use_sim_time'), 'autostart': LaunchConfiguration('autostart')},
        ],
        remappings=[
            ('camera0/image_raw', LaunchConfiguration('camera0')),
            ('camera0/image_raw/compressed', [LaunchConfiguration('camera0'), '/compressed']),
            ('camera1/image_raw', LaunchConfiguration('camera1')),
            ('camera1/image_raw/compressed', [LaunchConfiguration('camera1'), '/compressed']),
            ('joint_states', LaunchConfiguration('joint_states')),
        ],
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')],
    )
    return LaunchDescription(args + [node])
