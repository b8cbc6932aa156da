"""The simulation through ros2_control: the demo policy drives a 2-joint arm on ros2_control's mock hardware through a
JointTrajectoryController, and the built-in tabletop simulation renders the overhead camera with the arm where the
controller put it (its joint_state_broadcaster's /joint_states), judging each episode as `npm start` does.

npx s2-policy sim models --out /tmp/s2sim        # demo models and their parameter file (once)
ros2 launch s2_policy sim_ros2_control.launch.py params_file:=/tmp/s2sim/sim_params.yaml episodes:=8
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node


def generate_launch_description():
    share = get_package_share_directory('s2_policy')
    arm = os.path.join(share, 'config', 'ros2_control')
    with open(os.path.join(arm, 'mock_arm.urdf')) as f:
        urdf = f.read()
    args = [
        DeclareLaunchArgument('params_file', description='s2_policy parameters (from `s2-policy sim models`)'),
        DeclareLaunchArgument('episodes', default_value='8', description='episodes before the simulation stops'),
        DeclareLaunchArgument('seed', default_value='0', description='seed of the first episode'),
        DeclareLaunchArgument('log_level', default_value='info', description='debug, info, warn, error'),
    ]
    log = ['--ros-args', '--log-level', LaunchConfiguration('log_level')]
    # The controller manager reads the hardware from /robot_description, which robot_state_publisher latches.
    rsp = Node(package='robot_state_publisher', executable='robot_state_publisher', output='screen',
               parameters=[{'robot_description': urdf}])
    manager = Node(package='controller_manager', executable='ros2_control_node', output='screen',
                   parameters=[os.path.join(arm, 'jtc.yaml')], arguments=log)
    spawner = Node(package='controller_manager', executable='spawner', output='screen',
                   arguments=['joint_state_broadcaster', 'arm_controller', '-c', '/controller_manager'])
    sim = Node(package='s2_policy', executable='s2_sim_node', name='s2_sim', output='screen',
               parameters=[{'episodes': LaunchConfiguration('episodes'), 'seed': LaunchConfiguration('seed'),
                            'arm_joint_states_topic': '/joint_states',
                            'arm_trajectory_topic': '/arm_controller/joint_trajectory'}],
               arguments=log)
    # The demo's joint velocities go to the JointTrajectoryController as positions integrated from /joint_states.
    policy = LifecycleNode(package='s2_policy', executable='s2_policy_node', name='s2_policy', namespace='', output='screen',
                           parameters=[LaunchConfiguration('params_file'),
                                       {'autostart': True, 'use_sim_time': True,
                                        'control.action_interface': 'joint_trajectory',
                                        'control.action_topic': '/arm_controller/joint_trajectory',
                                        'control.joint_names': ['joint1', 'joint2'],
                                        'joint_states.topic': '/joint_states'}],
                           arguments=log)
    stop = RegisterEventHandler(OnProcessExit(target_action=sim, on_exit=[EmitEvent(event=Shutdown(reason='simulation finished'))]))
    return LaunchDescription(args + [rsp, manager, spawner, sim, policy, stop])
